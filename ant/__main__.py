from ant.cli.main import main

main()
