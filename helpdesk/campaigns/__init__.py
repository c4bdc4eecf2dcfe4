"""Campaigns: one message (a re-purchase voucher, news) to a list of customers, only through channels whose
rules allow a promotion, rate-limited, with per-recipient status and a report of what followed."""
