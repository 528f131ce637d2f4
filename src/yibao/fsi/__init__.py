"""The national interface (FSI): one envelope, one URL, the transaction chosen by `infno` — a sibling entrypoint
of api/ and web/, calling the same services. `yibao.fsi.gateway.install(app)` mounts it (the composition root
does); `transactions.py` holds the handlers, `codes.py` the national codes and the fee-line mapping."""
