"""The lab: Podman on this machine, reached only through the lab driver (stacks/drivers/lab.py,
:mod:`fellesdrift.lab.driver`). One module per thing it makes."""
