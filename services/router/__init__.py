"""router: decides who owns each ticket (tier, queue, agent) from the tier charter."""
