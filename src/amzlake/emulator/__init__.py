"""A local, offline emulator of Login with Amazon, Amazon Ads reporting v3 and SP-API Reports."""
