//! The data files streamer reads: `[geoip]` (the `.mmdb` databases) and `[catalog]` /
//! `[data_paths]` (the warmup CSVs, read into [`CatalogConfig`]).

use std::path::PathBuf;

use super::reader::{list, path_list, Reader};

/// CSV files for warmup, in load order: `[catalog]` entries, then `[data_paths]` patterns
/// joined to `base_path`. An entry may be a glob pattern (`*`, `?`, `[...]`);
/// `catalog::expand` expands it.
#[derive(Debug, Clone, Default)]
pub struct CatalogConfig {
    pub products: Vec<PathBuf>,
    pub locations: Vec<PathBuf>,
}

/// `[geoip] path`: the databases in lookup order (none: no geography).
pub(super) fn geoip_paths(r: &Reader<'_>) -> Vec<PathBuf> {
    r.get("geoip", "path")
        .map(|e| path_list(&e.value))
        .unwrap_or_default()
}

pub(super) fn catalog_sections(r: &Reader<'_>) -> CatalogConfig {
    let mut c = CatalogConfig::default();
    if let Some(e) = r.get("catalog", "products") {
        c.products.extend(path_list(&e.value));
    }
    if let Some(e) = r.get("catalog", "locations") {
        c.locations.extend(path_list(&e.value));
    }
    let base = r
        .get("data_paths", "base_path")
        .map(|e| PathBuf::from(e.value.trim()))
        .unwrap_or_default();
    if let Some(e) = r.get("data_paths", "prod_csv_pattern") {
        c.products
            .extend(list(&e.value).into_iter().map(|p| base.join(p)));
    }
    if let Some(e) = r.get("data_paths", "location_csv_pattern") {
        c.locations
            .extend(list(&e.value).into_iter().map(|p| base.join(p)));
    }
    c
}
