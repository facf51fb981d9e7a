"""code_interpreter sandboxes: throwaway, locked-down Docker containers (arrives with the code_interpreter issue)."""
