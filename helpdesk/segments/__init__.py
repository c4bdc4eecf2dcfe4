"""Segments: saved definitions of a group of customers (bought a product 11–12 months ago, no complaint
open, ...) matched against the customers' history when asked, for a preview or a campaign's audience."""
