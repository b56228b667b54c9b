"""May this account run this now: its billing state, trial and plan bounds, the billing periods,
the usage ledger and plan changes. Below the domains that start work; above accounts and plans."""
