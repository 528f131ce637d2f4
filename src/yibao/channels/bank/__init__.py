"""A credit-line bank's (信用支付) connector: connector.py (async HTTP, one method per flow) and transformers.py (the wire format, pure)."""
