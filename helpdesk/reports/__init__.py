"""After-sales reports: KPIs as JSON, a CSV export and a page with charts."""
