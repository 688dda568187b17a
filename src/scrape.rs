//! Scraping. STUB.
