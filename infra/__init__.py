"""carestack controller: tier catalog + client stack -> CarePlan -> AWS, Ansible, Kuma, lab."""
