"""Report-type registry: what each Amazon report accepts, returns and how its dates work."""
