from customvid.cli import main

raise SystemExit(main())
