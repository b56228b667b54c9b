"""Plans, metering, PayPal subscriptions and invoices."""
