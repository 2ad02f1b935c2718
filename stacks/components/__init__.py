"""Components named after the domain, one per module. They say what is needed; a driver decides
how (stacks/drivers/).

Each is a Pulumi component in the style of Pulumi's own examples: ``Component(name, args,
opts)`` with a typed, frozen ``…Args`` dataclass of its inputs, every child parented to it, and
``self.register_outputs({...})`` as the last statement of ``__init__``
(tests/unit/test_components.py holds every module of this package to that).
"""

from stacks.components.broadband_link import BroadbandLink, BroadbandLinkArgs
from stacks.components.hosting import Hosting, HostingArgs
from stacks.components.hosts import HostRecords, host_record
from stacks.components.municipal_site import MunicipalSite, MunicipalSiteArgs
from stacks.components.operations_centre import OperationsCentre, OperationsCentreArgs

__all__ = ["BroadbandLink", "BroadbandLinkArgs", "HostRecords", "Hosting", "HostingArgs",
           "MunicipalSite", "MunicipalSiteArgs", "OperationsCentre", "OperationsCentreArgs",
           "host_record"]
