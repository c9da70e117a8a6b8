"""The constructs the AWS stack is composed of, one per concern (amzlake.aws.stack puts them
together): storage and keys, notifications, ingest, transform, operations, query access."""
