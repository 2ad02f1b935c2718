"""How tools reach hosts and what they must not leak: the encrypted secret store, the lab's CA, SSH
keys and known_hosts."""
