"""Phase 4, converge: role variables rendered from the model and the hosts (hostvars), the Ansible
run through ansible-runner, and its idempotence judgement."""
