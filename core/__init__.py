"""The bottom layer every other one builds on: errors, devices, video I/O, records, networks and
the artefact contracts (run folder, embeddings file, report file)."""
