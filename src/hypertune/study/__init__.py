"""A study on disk: its typed record (study.json), its tables (results.csv, curves.csv) and the
provenance each trial keeps (git commit, versions, data fingerprint). No Ray, no pictures."""
