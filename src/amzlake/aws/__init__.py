"""amzlake's AWS runtime: Lambda handlers, the Glue job, the CDK stack (boto3 only in here)."""
