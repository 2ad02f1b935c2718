"""The network phase: the intended configuration of every router (:mod:`.intended`), rendered
from the model, and pushing it safely through netmiko (:mod:`.push`, :mod:`.frr`)."""
