"""The agency's medical-insurance catalogue (医保目录) per region and version, and each institution's mapping (对照) of
its own item codes to national codes; the decision a fee line gets from them. Owns catalogue_versions,
catalogue_entries and item_mappings. The rules are pure, in yibao.domain.catalogue; docs/catalogue.md."""
