"""amzlake: Amazon Ads and Vendor Central reports into an Iceberg lakehouse."""

__version__ = "0.1.0"
