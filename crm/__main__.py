import sys

from crm.cli import main

if __name__ == "__main__":  # not when a worker process (crm.imports.phones) re-imports the main module
    sys.exit(main())
