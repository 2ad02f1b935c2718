from fellesdrift.cli import main

main()
