"""Alipay-style connector: connector.py (async HTTP, one method per flow) and transformers.py (the wire format, pure)."""
