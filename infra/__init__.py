"""carestack's controller: tier catalog + client stack -> CarePlan -> AWS, Ansible, Kuma.

The lab (`lab/`, its own package) realizes the same plan on one machine; nothing here imports it.
"""
