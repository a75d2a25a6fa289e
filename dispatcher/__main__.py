from dispatcher.cli.main import main

raise SystemExit(main())
