//! The stored form of the scrapes: series keys are long and the same on every droplet, so
//! they are written once per scrape (`keys`, sorted) and each droplet keeps its values as one
//! string in that order (`"v": "0.25 - 3.5"`, `-` where it has no such series). One string
//! rather than a list of numbers: commands that do not need a droplet's values (`plan`,
//! `apply`, `status`, and every command for the scrapes it does not change) skip a string
//! several times faster than they could skip numbers, and the values are parsed only where
//! they are used. Files written before kept `[[key index, value], …]` pairs: still read.
//!
//! A droplet's stored fields are listed once, in [`StoredDroplet`], which the writer fills
//! from a borrowed [`ScrapedDroplet`] and the reader reads with serde's derive; the two
//! conversions beside it name every field of `ScrapedDroplet`, so a field added to the model
//! does not compile until it is stored (or said not to be). Only the key table and the
//! values against it are read by hand.

use std::cell::RefCell;
use std::fmt;

use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Reading;
use crate::model::{Scrape, ScrapedDroplet};
use crate::series::{Key, SeriesMap};

/// The last two scrapes of a group, oldest first, and the JSON each was read from for as
/// long as they are unchanged: a command that only reads them (`evaluate`, `plan`, `apply`)
/// writes them back as they were read instead of serialising thousands of series again.
/// Those a command reads are parsed (and checked) when the state is read.
#[derive(Debug, Clone, Default)]
pub(super) struct Scrapes {
    /// Parsed, oldest first (without [`Reading::previous`], only the latest).
    pub(super) list: Vec<Scrape>,
    /// Each scrape's JSON as read, while the scrapes are unchanged.
    pub(super) raw: Option<Vec<Box<RawValue>>>,
    /// Read with less than [`Reading::ALL`]: must not change.
    pub(super) partial: bool,
}

impl Scrapes {
    /// Parses what `read` asks for from the JSON read.
    pub(super) fn parse(&mut self, read: Reading) -> Result<(), String> {
        let Some(raw) = &self.raw else {
            return Ok(());
        };
        let skip = if read.previous {
            0
        } else {
            raw.len().saturating_sub(1)
        };
        self.list = raw
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, r)| {
                let mut de = serde_json::Deserializer::from_str(r.get());
                let seed = ScrapeSeed {
                    metrics: read.metrics,
                    previous: i + 1 < raw.len(),
                };
                seed.deserialize(&mut de)
                    .and_then(|s| de.end().map(|()| s))
                    .map_err(|e| format!("scrape {} of {}: {e}", i + 1, raw.len()))
            })
            .collect::<Result<_, _>>()?;
        self.partial = read != Reading::ALL;
        Ok(())
    }
}

impl PartialEq for Scrapes {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl Serialize for Scrapes {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match &self.raw {
            Some(raw) => raw.serialize(ser),
            None => {
                let n = self.list.len();
                // One buffer for every droplet's values.
                let scratch = RefCell::new(String::new());
                ser.collect_seq(self.list.iter().enumerate().map(|(i, scrape)| ScrapeOut {
                    scrape,
                    previous: i + 1 < n,
                    scratch: &scratch,
                }))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Scrapes {
    /// Only splits the scrapes; [`Scrapes::parse`] reads them.
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Ok(Scrapes {
            list: Vec::new(),
            raw: Some(Vec::deserialize(de)?),
            partial: false,
        })
    }
}

// ---------------------------------------------------------------------------------------
// A droplet.

/// A scraped droplet as the file holds it, for the writer (`DropletOut::of`, borrowing
/// a [`ScrapedDroplet`]) and the reader (`DropletIn::into_droplet`) alike: `created` is
/// whole seconds since the epoch and `v` the droplet's values against its scrape's key table.
/// A previous scrape's droplets leave out what only the latest needs (see
/// [`ScrapedDroplet::keep_for_rates`]): name, status, creation time and address. (A field
/// of type `Option` that is missing reads as `None`.)
#[derive(Serialize, Deserialize)]
struct StoredDroplet<Short, Text, Values> {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Short>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Short>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<Short>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Text>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    protected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<Values>,
}

/// What the writer stores: borrowed.
type DropletOut<'a> = StoredDroplet<&'a str, &'a str, ValuesOut<'a>>;
/// What the reader reads: the texts owned (short ones inline), the values as written, parsed
/// against the key table afterwards.
type DropletIn<'de> = StoredDroplet<CompactString, String, &'de RawValue>;

impl<'a> DropletOut<'a> {
    fn of(d: &'a ScrapedDroplet, previous: bool, values: ValuesOut<'a>) -> Self {
        let ScrapedDroplet {
            id,
            name,
            status,
            created_at,
            address,
            error,
            protected,
            series,
        } = d;
        let latest = !previous;
        StoredDroplet {
            id: *id,
            name: latest.then_some(&**name),
            status: latest.then_some(&**status),
            created: latest.then(|| created_at.timestamp()),
            address: address.as_deref().filter(|_| latest),
            error: error.as_deref(),
            protected: *protected,
            v: (!series.is_empty()).then_some(values),
        }
    }
}

impl DropletIn<'_> {
    /// The droplet, its values read against `table`. A previous scrape's droplet may lack
    /// name, status and creation time (all three), a latest one may not.
    fn into_droplet<E: serde::de::Error>(
        self,
        table: Table,
        previous: bool,
    ) -> Result<ScrapedDroplet, E> {
        let StoredDroplet {
            id,
            name,
            status,
            created,
            address,
            error,
            protected,
            v,
        } = self;
        let lenient = previous && (&name, &status, created) == (&None, &None, None);
        let created = required(created, lenient, "created")?;
        Ok(ScrapedDroplet {
            id,
            name: required(name, lenient, "name")?,
            status: required(status, lenient, "status")?,
            created_at: DateTime::<Utc>::from_timestamp(created, 0).ok_or_else(|| {
                E::custom(format!(
                    "droplet {id}: creation time {created} is out of range"
                ))
            })?,
            address,
            error,
            protected,
            series: match v {
                Some(raw) => table.read(raw)?,
                None => SeriesMap::new(),
            },
        })
    }
}

/// `v`, or its default where it may be left out.
fn required<T: Default, E: serde::de::Error>(
    v: Option<T>,
    may_be_left_out: bool,
    field: &'static str,
) -> Result<T, E> {
    match v {
        Some(v) => Ok(v),
        None if may_be_left_out => Ok(T::default()),
        None => Err(E::missing_field(field)),
    }
}

// ---------------------------------------------------------------------------------------
// Writing a scrape.

/// The stored form of a [`Scrape`], written from a borrowed one: saving a state never copies
/// its scrapes (thousands of series maps) first.
#[derive(Serialize)]
struct StoredScrape<'a> {
    at: &'a DateTime<Utc>,
    keys: &'a [&'a str],
    droplets: DropletsOut<'a>,
    #[serde(skip_serializing_if = "is_zero")]
    bad_lines: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    bad_line_example: &'a Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A scrape as stored: the previous one (the older of the two) without what only the latest
/// needs (see [`ScrapedDroplet::keep_for_rates`]).
struct ScrapeOut<'a> {
    scrape: &'a Scrape,
    previous: bool,
    scratch: &'a RefCell<String>,
}

impl Serialize for ScrapeOut<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let Scrape {
            at,
            droplets,
            bad_lines,
            bad_line_example,
        } = self.scrape;
        let mut keys: Vec<&str> = droplets
            .iter()
            .flat_map(|d| d.series.keys().map(|k| &**k))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        StoredScrape {
            at,
            keys: &keys,
            droplets: DropletsOut {
                droplets,
                keys: &keys,
                previous: self.previous,
                scratch: self.scratch,
            },
            bad_lines: *bad_lines,
            bad_line_example,
        }
        .serialize(ser)
    }
}

/// A scrape's droplets, each stored as it is written (no list of them built first).
struct DropletsOut<'a> {
    droplets: &'a [ScrapedDroplet],
    keys: &'a [&'a str],
    previous: bool,
    scratch: &'a RefCell<String>,
}

impl Serialize for DropletsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.droplets.iter().map(|d| {
            let values = ValuesOut {
                keys: self.keys,
                series: &d.series,
                scratch: self.scratch,
            };
            StoredDroplet::of(d, self.previous, values)
        }))
    }
}

/// What stands for a droplet's missing value among its values.
const MISSING: &str = "-";

/// A droplet's values in the order of `keys` (sorted, as its own series are), separated by
/// spaces, [`MISSING`] where it has no such series; trailing missing values left out.
/// Shortest round-trip form of each value (`NaN` and `inf` included).
struct ValuesOut<'a> {
    keys: &'a [&'a str],
    series: &'a SeriesMap,
    /// Where they are formatted (shared by the droplets of a state).
    scratch: &'a RefCell<String>,
}

impl Serialize for ValuesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use std::fmt::Write as _;
        let mut out = self.scratch.borrow_mut();
        out.clear();
        let mut table = self.keys.iter();
        for (k, val) in self.series.iter() {
            for key in table.by_ref() {
                if !out.is_empty() {
                    out.push(' ');
                }
                if *key == &**k {
                    let _ = write!(out, "{val:?}");
                    break;
                }
                out.push_str(MISSING);
            }
        }
        ser.serialize_str(&out)
    }
}

// ---------------------------------------------------------------------------------------
// Reading a scrape: the key table, and each droplet's values against it.

/// Reads a stored scrape straight into [`Scrape`]: every droplet's series map is built from
/// the scrape's key table as it is read (one shared copy of each key), with no intermediate
/// list of droplets.
struct ScrapeSeed {
    /// The metrics whose series are kept (`None`: all); see [`Reading::metrics`].
    metrics: Option<&'static [&'static str]>,
    /// The previous scrape: its droplets may have only `id`, `error` and `v`.
    previous: bool,
}

impl ScrapeSeed {
    fn wants(&self, key: &str) -> bool {
        match self.metrics {
            None => true,
            Some(names) => names.contains(&crate::series::name_of(key)),
        }
    }
}

/// The fields of [`StoredScrape`], as the reader meets them.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ScrapeField {
    At,
    Keys,
    Droplets,
    BadLines,
    BadLineExample,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for ScrapeSeed {
    type Value = Scrape;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ScrapeSeed {
    type Value = Scrape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scrape (an object with `at`, `keys` and `droplets`)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut at = None;
        // Each key, `None` when this reader does not keep it.
        let mut keys: Option<Vec<Option<Key>>> = None;
        let mut droplets = None;
        // `droplets` read before `keys` (a file whose keys were sorted by some tool):
        // kept as JSON until the key table is known.
        let mut droplets_first: Option<Box<RawValue>> = None;
        let mut bad_lines = 0;
        let mut bad_line_example = None;
        while let Some(field) = map.next_key()? {
            match field {
                ScrapeField::At if at.is_some() => return Err(A::Error::duplicate_field("at")),
                ScrapeField::Keys if keys.is_some() => {
                    return Err(A::Error::duplicate_field("keys"))
                }
                ScrapeField::Droplets if droplets.is_some() || droplets_first.is_some() => {
                    return Err(A::Error::duplicate_field("droplets"))
                }
                ScrapeField::At => at = Some(map.next_value()?),
                ScrapeField::Keys => {
                    let ks: Vec<String> = map.next_value()?;
                    keys = Some(
                        ks.into_iter()
                            .map(|k| self.wants(&k).then(|| Key::from(k)))
                            .collect(),
                    );
                }
                ScrapeField::Droplets => match &keys {
                    Some(table) => {
                        droplets = Some(map.next_value_seed(DropletsSeed {
                            table: Table::new(table),
                            previous: self.previous,
                        })?)
                    }
                    None => droplets_first = Some(map.next_value()?),
                },
                ScrapeField::BadLines => bad_lines = map.next_value()?,
                ScrapeField::BadLineExample => bad_line_example = map.next_value()?,
                ScrapeField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(raw) = droplets_first {
            let table = keys.unwrap_or_default();
            let mut de = serde_json::Deserializer::from_str(raw.get());
            droplets = Some(
                DropletsSeed {
                    table: Table::new(&table),
                    previous: self.previous,
                }
                .deserialize(&mut de)
                .map_err(A::Error::custom)?,
            );
        }
        Ok(Scrape {
            at: at.ok_or_else(|| A::Error::missing_field("at"))?,
            droplets: droplets.ok_or_else(|| A::Error::missing_field("droplets"))?,
            bad_lines,
            bad_line_example,
        })
    }
}

/// A scrape's key table as this reader keeps it: each key, `None` where it is not kept.
#[derive(Clone, Copy)]
struct Table<'k> {
    keys: &'k [Option<Key>],
    /// How many keys are kept (decided once per scrape; when none, every droplet's
    /// values are left unread).
    kept: usize,
    /// The kept keys are in strictly increasing order (as written): a droplet's values,
    /// read in table order, are then its sorted series map as they come.
    sorted: bool,
}

impl<'k> Table<'k> {
    fn new(keys: &'k [Option<Key>]) -> Self {
        let mut kept = keys.iter().flatten();
        let sorted = kept.clone().zip(kept.clone().skip(1)).all(|(a, b)| a < b);
        Table {
            keys,
            kept: kept.by_ref().count(),
            sorted,
        }
    }

    /// A droplet's series from its `v` as written: a string of values in table order, or
    /// the `[[key index, value], …]` pairs of earlier files.
    fn read<E: serde::de::Error>(self, raw: &RawValue) -> Result<SeriesMap, E> {
        if self.kept == 0 {
            // Nothing to keep: left unread.
            return Ok(SeriesMap::new());
        }
        let json = raw.get();
        // The string as written (values and `-` need no escapes): read in place.
        if let Some(text) = json.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            if !text.contains('\\') {
                return self.values(text).map_err(E::custom);
            }
        }
        // Anything else (a string with escapes, pairs, a value of the wrong type) through
        // serde.
        let mut de = serde_json::Deserializer::from_str(json);
        SeriesSeed(self)
            .deserialize(&mut de)
            .map_err(|e| E::custom(without_position(&e)))
    }

    /// Values in table order, separated by white space, [`MISSING`] for none.
    fn values(self, s: &str) -> Result<SeriesMap, String> {
        let Table { keys, kept, sorted } = self;
        let mut values = Vec::with_capacity(kept);
        for (i, text) in s.split_ascii_whitespace().enumerate() {
            let Some(key) = keys.get(i) else {
                return Err(format!(
                    "{} values, more than the scrape's {} keys",
                    s.split_ascii_whitespace().count(),
                    keys.len()
                ));
            };
            if let (Some(k), false) = (key, text == MISSING) {
                let v = text
                    .parse::<f64>()
                    .map_err(|_| format!("value {} ({text:?}) is not a number", i + 1))?;
                values.push((k.clone(), v));
            }
        }
        Ok(if sorted {
            SeriesMap::from_sorted_store_unchecked(values)
        } else {
            values.into_iter().collect()
        })
    }
}

/// The message of an error of a value read on its own, without its position in that value
/// (the reader of the whole scrape adds the droplet's).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&at) {
        Some(message) => message.to_string(),
        None => text,
    }
}

struct DropletsSeed<'k> {
    table: Table<'k>,
    previous: bool,
}

impl<'de> DeserializeSeed<'de> for DropletsSeed<'_> {
    type Value = Vec<ScrapedDroplet>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DropletsSeed<'_> {
    type Value = Vec<ScrapedDroplet>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of droplets")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(d) = seq.next_element::<DropletIn>()? {
            out.push(d.into_droplet(self.table, self.previous)?);
        }
        Ok(out)
    }
}

/// A droplet's values read through serde: a string of values in key-table order, or the
/// `[[key index, value], …]` pairs of earlier files.
struct SeriesSeed<'k>(Table<'k>);

impl<'de> DeserializeSeed<'de> for SeriesSeed<'_> {
    type Value = SeriesMap;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SeriesSeed<'_> {
    type Value = SeriesMap;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string of values (or a list of [key index, value] pairs)")
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        self.0.values(s).map_err(E::custom)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut map = SeriesMap::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(pair) = seq.next_element_seed(PairSeed(self.0.keys))? {
            if let Some((k, v)) = pair {
                // Written in key order, so this appends; anything else is still sorted.
                if let Some((k, v)) = map.try_append(k, v) {
                    map.insert(k, v);
                }
            }
        }
        Ok(map)
    }
}

/// One `[key index, value]`; `None` when the reader does not keep that key. A `null`
/// value is how JSON writes NaN and ±Inf: it reads back as NaN (no data either way).
struct PairSeed<'k>(&'k [Option<Key>]);

impl<'de> DeserializeSeed<'de> for PairSeed<'_> {
    type Value = Option<(Key, f64)>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PairSeed<'_> {
    type Value = Option<(Key, f64)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [key index, value] pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let i: u32 = seq
            .next_element()?
            .ok_or_else(|| A::Error::invalid_length(0, &self))?;
        let key = self.0.get(i as usize).ok_or_else(|| {
            A::Error::custom(format!(
                "series index {i} is out of range (the scrape has {} keys)",
                self.0.len()
            ))
        })?;
        let out = match key {
            Some(k) => {
                let v: Option<f64> = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                Some((k.clone(), v.unwrap_or(f64::NAN)))
            }
            None => {
                seq.next_element::<IgnoredAny>()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                None
            }
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(A::Error::invalid_length(3, &self));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A droplet with every field set to something other than its default.
    fn every_field() -> ScrapedDroplet {
        ScrapedDroplet {
            id: 42,
            name: "web-42".into(),
            status: "active".into(),
            created_at: DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            address: Some("10.0.0.42".into()),
            error: Some("port 9100: refused".into()),
            protected: true,
            series: [("node_load1", 0.5), ("node_load5", 2.0)]
                .into_iter()
                .map(|(k, v)| (k.into(), v))
                .collect(),
        }
    }

    fn scrape_of(droplets: Vec<ScrapedDroplet>) -> Scrape {
        Scrape {
            at: DateTime::from_timestamp(1_700_000_000, 1).unwrap(),
            droplets,
            bad_lines: 2,
            bad_line_example: Some("bad line".into()),
        }
    }

    /// The stored bytes of `list` (oldest first).
    fn written(list: Vec<Scrape>) -> Vec<u8> {
        serde_json::to_vec(&Scrapes {
            list,
            raw: None,
            partial: false,
        })
        .unwrap()
    }

    /// Writes `list` (oldest first) and reads it back whole.
    fn round_trip(list: Vec<Scrape>) -> (serde_json::Value, Vec<Scrape>) {
        let bytes = written(list);
        let mut read: Scrapes = serde_json::from_slice(&bytes).unwrap();
        read.parse(Reading::ALL).unwrap();
        (serde_json::from_slice(&bytes).unwrap(), read.list)
    }

    #[test]
    fn a_droplet_with_every_field_set_reads_back_the_same() {
        let mut previous = every_field();
        previous.keep_for_rates();
        let latest = scrape_of(vec![every_field()]);
        let list = vec![scrape_of(vec![previous]), latest];
        let (_, back) = round_trip(list.clone());
        assert_eq!(back, list);
    }

    /// Every field of a scraped droplet's own serde form has its key in the stored form
    /// (under another name only where the stored form differs: whole seconds, values against
    /// the key table), and the stored form has no key of its own besides.
    #[test]
    fn the_stored_form_covers_every_field_of_a_scraped_droplet() {
        let d = every_field();
        let own: BTreeSet<String> = match serde_json::to_value(&d).unwrap() {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            v => panic!("{v}"),
        };
        let renamed = [("created_at", "created"), ("series", "v")];
        let expected: BTreeSet<String> = own
            .iter()
            .map(|k| {
                let to = renamed.iter().find(|(from, _)| from == k);
                to.map_or(k.as_str(), |(_, to)| to).to_string()
            })
            .collect();
        let (json, _) = round_trip(vec![scrape_of(vec![d])]);
        let stored: BTreeSet<String> = json[0]["droplets"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(stored, expected);
        // and the scrape's own fields besides its droplets
        let scrape: BTreeSet<&str> = json[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            scrape,
            BTreeSet::from(["at", "keys", "droplets", "bad_lines", "bad_line_example"])
        );
    }

    #[test]
    fn reading_the_previous_scrape_with_named_metrics_keeps_only_those() {
        let mut previous = every_field();
        previous.keep_for_rates();
        let list = vec![scrape_of(vec![previous]), scrape_of(vec![every_field()])];
        let bytes = written(list);
        let mut read: Scrapes = serde_json::from_slice(&bytes).unwrap();
        read.parse(Reading {
            previous: true,
            metrics: Some(&["node_load5"]),
        })
        .unwrap();
        assert!(read.partial);
        assert_eq!(read.list.len(), 2);
        for s in &read.list {
            let keys: Vec<&str> = s.droplets[0].series.keys().map(|k| &**k).collect();
            assert_eq!(keys, ["node_load5"]);
        }
        // none named: the droplets without their values
        let mut read: Scrapes = serde_json::from_slice(&bytes).unwrap();
        read.parse(Reading::latest(&[])).unwrap();
        assert_eq!(read.list.len(), 1);
        assert!(read.list[0].droplets[0].series.is_empty());
        assert_eq!(read.list[0].droplets[0].name, "web-42");
    }

    #[test]
    fn values_written_with_escapes_are_read() {
        // A tool may write the string of values with escapes (`\u0020` is a space).
        let json = r#"[{"at": "2026-01-01T00:00:00Z", "keys": ["a", "b", "c"],
            "droplets": [{"id": 1, "name": "w", "status": "active", "created": 0,
            "v": "1.5\u0020-\t2.5"}]}]"#;
        let mut read: Scrapes = serde_json::from_str(json).unwrap();
        read.parse(Reading::latest(&["c"])).unwrap();
        let series = &read.list[0].droplets[0].series;
        assert_eq!(series.get("c"), Some(&2.5));
        assert_eq!(series.len(), 1);
    }
}
