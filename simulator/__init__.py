"""The traffic simulator: upstream systems and support agents driving ticket lifecycles
through intake, and an independent reference computation of the tier KPIs."""
