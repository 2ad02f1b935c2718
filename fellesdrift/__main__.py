from fellesdrift.cli.app import main

main()
