"""After-delivery care: the thank-you, rating request, usage tips and check-in an order triggers."""
