"""UnixFS over dag-pb: the exact DAG ``ipfs add --cid-version=1`` builds, and its verifier.

Why we build the DAG ourselves: a CID names a DAG, not bytes, so "the same CID for the same
content" across the local store and IPFS means reproducing Kubo's importer bit for bit. One
concern per module:

* :mod:`.cid`: CIDs (binary, text) and block verification;
* :mod:`.dagpb`: the dag-pb and UnixFS ``Data`` protobuf codec;
* :mod:`.importer`: files and directories into blocks (Kubo's chunker and balanced layout);
* :mod:`.reader`: walking a DAG, verifying every block on the way.
"""
