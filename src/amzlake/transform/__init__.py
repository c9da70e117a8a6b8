"""Raw documents to typed Arrow batches, per report type (guidance steps 4-5)."""
