//! Catalog CSVs loaded by warmup (contract §5): products (`product_id,name,url,language_code`)
//! and locations (`ip,country_short,country_long,region,city`). Catalog values win over
//! what events derive; loading the same files again changes nothing.

use std::path::{Path, PathBuf};

use postgres::GenericClient;

use crate::config::CatalogConfig;
use crate::error::{Error, Result};
use crate::transform::sha256_hex;

/// Rows sent per statement.
const CHUNK: usize = 5_000;

/// Expand the configured entries (glob patterns with `*`, `?` or `[...]` allowed, via the
/// `glob` crate) into existing files, in order; each pattern's matches are sorted.
pub(crate) fn expand(entries: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in entries {
        let text = entry.to_string_lossy();
        if !text.contains(['*', '?', '[']) {
            if !entry.is_file() {
                return Err(Error::Config(format!(
                    "[catalog]: file {} does not exist",
                    entry.display()
                )));
            }
            files.push(entry.clone());
            continue;
        }
        let paths = glob::glob(&text)
            .map_err(|e| Error::Config(format!("[catalog]: bad pattern {text}: {e}")))?;
        let mut matched: Vec<PathBuf> = paths.filter_map(|p| p.ok()).collect();
        matched.sort();
        if matched.is_empty() {
            log::warn!("catalog pattern {text} matches no file");
        }
        files.extend(matched);
    }
    Ok(files)
}

/// What loading the catalogs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// product rows read
    pub products: usize,
    /// location rows read
    pub locations: usize,
    /// existing `dim_location` rows whose geography the catalog changed (facts already
    /// counted under the old country need the report rollups rebuilt)
    pub locations_changed: u64,
}

/// Load every configured catalog file.
pub(crate) fn load(client: &mut impl GenericClient, cfg: &CatalogConfig) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    for f in expand(&cfg.products)? {
        loaded.products += load_products(client, &f)?;
    }
    for f in expand(&cfg.locations)? {
        let (read, changed) = load_locations(client, &f)?;
        loaded.locations += read;
        loaded.locations_changed += changed;
    }
    Ok(loaded)
}

/// Read a CSV with a header row; return each record's values for `columns` (by header name).
fn read(path: &Path, columns: &[&str]) -> Result<Vec<Vec<Option<String>>>> {
    let bad = |e: &dyn std::fmt::Display| Error::Config(format!("catalog {}: {e}", path.display()));
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(&e))?;
    let headers = rdr.headers().map_err(|e| bad(&e))?.clone();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| {
            headers
                .iter()
                .position(|h| h.eq_ignore_ascii_case(c))
                .ok_or_else(|| bad(&format!("no column `{c}` in the header")))
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(&format!("record {}: {e}", n + 1)))?;
        rows.push(
            index
                .iter()
                .map(|&i| rec.get(i).filter(|v| !v.is_empty()).map(str::to_string))
                .collect(),
        );
    }
    Ok(rows)
}

fn column(rows: &[Vec<Option<String>>], i: usize) -> Vec<Option<&str>> {
    rows.iter().map(|r| r[i].as_deref()).collect()
}

fn load_products(client: &mut impl GenericClient, path: &Path) -> Result<usize> {
    let mut rows = read(path, &["product_id", "name", "url", "language_code"])?;
    rows.retain(|r| r[0].is_some());
    for chunk in rows.chunks(CHUNK) {
        client
            .execute(
                "INSERT INTO dim_product AS d (product_key, name, current_url, language_code, from_catalog) \
                 SELECT k, n, u, l, true FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) \
                   AS c(k, n, u, l) \
                 ON CONFLICT (product_key) DO UPDATE SET \
                   name = COALESCE(EXCLUDED.name, d.name), \
                   current_url = COALESCE(EXCLUDED.current_url, d.current_url), \
                   language_code = COALESCE(EXCLUDED.language_code, d.language_code), \
                   from_catalog = true \
                 WHERE (d.name, d.current_url, d.language_code, d.from_catalog) IS DISTINCT FROM \
                   (COALESCE(EXCLUDED.name, d.name), COALESCE(EXCLUDED.current_url, d.current_url), \
                    COALESCE(EXCLUDED.language_code, d.language_code), true)",
                &[&column(chunk, 0), &column(chunk, 1), &column(chunk, 2), &column(chunk, 3)],
            )
            .map_err(|e| Error::from_pg(format!("loading products from {}", path.display()), e))?;
    }
    log::info!("catalog: {} products from {}", rows.len(), path.display());
    Ok(rows.len())
}

/// Returns (rows read, existing rows whose geography changed).
fn load_locations(client: &mut impl GenericClient, path: &Path) -> Result<(usize, u64)> {
    let mut rows = read(
        path,
        &["ip", "country_short", "country_long", "region", "city"],
    )?;
    rows.retain(|r| r[0].is_some());
    let pg = |e| Error::from_pg(format!("loading locations from {}", path.display()), e);
    let mut changed = 0;
    for chunk in rows.chunks(CHUNK) {
        let keys: Vec<String> = chunk
            .iter()
            .map(|r| sha256_hex(r[0].as_deref().unwrap_or_default()))
            .collect();
        let params: [&(dyn postgres::types::ToSql + Sync); 6] = [
            &keys,
            &column(chunk, 0),
            &column(chunk, 1),
            &column(chunk, 2),
            &column(chunk, 3),
            &column(chunk, 4),
        ];
        // Update the rows that exist and differ, then add the missing ones. (A file naming
        // the same ip twice: its first record wins.)
        changed += client
            .execute(
                "UPDATE dim_location AS d SET country_code = c.cc, country_name = c.cn, \
                   region_name = c.rn, city_name = c.ci \
                 FROM (SELECT DISTINCT ON (k) * FROM unnest($1::text[], $2::text[], $3::text[], \
                   $4::text[], $5::text[], $6::text[]) WITH ORDINALITY \
                   AS u(k, ip, cc, cn, rn, ci, n) ORDER BY k, n) c \
                 WHERE d.ip_key = c.k AND (d.country_code, d.country_name, d.region_name, \
                   d.city_name) IS DISTINCT FROM (c.cc, c.cn, c.rn, c.ci)",
                &params,
            )
            .map_err(pg)?;
        client
            .execute(
                "INSERT INTO dim_location (ip_key, ip_address, country_code, country_name, \
                   region_name, city_name) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                   $6::text[]) \
                 ON CONFLICT (ip_key) DO NOTHING",
                &params,
            )
            .map_err(pg)?;
    }
    log::info!("catalog: {} locations from {}", rows.len(), path.display());
    Ok((rows.len(), changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("streamer-catalog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn patterns_expand_to_sorted_existing_files() {
        let dir = scratch("glob");
        for f in ["b_products.csv", "a_products.csv", "notes.txt"] {
            std::fs::write(dir.join(f), "product_id,name,url,language_code\n").expect("write");
        }
        let files = expand(&[dir.join("*_products.csv")]).expect("expand");
        assert_eq!(
            files,
            vec![dir.join("a_products.csv"), dir.join("b_products.csv")]
        );
        // A pattern that matches nothing is not an error (it is logged).
        assert!(expand(&[dir.join("*.parquet")]).expect("expand").is_empty());
        // A plain path that does not exist is a configuration error.
        assert!(matches!(
            expand(&[dir.join("missing.csv")]),
            Err(Error::Config(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn columns_are_found_by_header_name_in_any_order() {
        let dir = scratch("read");
        let path = dir.join("locations.csv");
        std::fs::write(
            &path,
            "city,ip,region,country_long,country_short\nParis,1.2.3.4,IDF,France,FR\n,5.6.7.8,,,\n",
        )
        .expect("write");
        let rows = read(
            &path,
            &["ip", "country_short", "country_long", "region", "city"],
        )
        .expect("read");
        assert_eq!(
            rows,
            vec![
                vec![
                    Some("1.2.3.4".to_string()),
                    Some("FR".to_string()),
                    Some("France".to_string()),
                    Some("IDF".to_string()),
                    Some("Paris".to_string())
                ],
                vec![Some("5.6.7.8".to_string()), None, None, None, None],
            ]
        );
        let err = read(&path, &["product_id"]).expect_err("no such column");
        assert!(err.to_string().contains("product_id"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
