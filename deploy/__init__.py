"""How the system is run: `deploy/local` for `make up` on one machine."""
