"""Operator alerts about billing: what needs a person, and the items kept out of the billing
round until one has looked at them."""
