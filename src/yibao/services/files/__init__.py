"""Files exchanged with institutions: what the platform builds for one (a 1301-series catalogue download) and what one
uploads (9101, for reconciliation's 3202), each fetched by its institution alone with 9102 until it expires. Owns
exchange_files. The rules (size, lifetime, names) are in yibao.domain.files; docs/fsi.md."""
