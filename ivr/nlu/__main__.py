from ivr.nlu.cli import main

raise SystemExit(main())
