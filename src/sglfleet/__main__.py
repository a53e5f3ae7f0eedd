from sglfleet.cli.app import main

main()
