"""Clients of Amazon's APIs: LWA tokens, the rate-limited retrying HTTP layer, Ads and SP-API."""
