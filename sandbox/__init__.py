"""code_interpreter sandboxes. `repl.py` is the stdlib-only REPL server that runs inside each container; the
container manager (hardened throwaway containers, warm pool, file transfer) arrives with the code_interpreter
issue."""
