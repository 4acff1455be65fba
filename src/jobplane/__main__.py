from jobplane.cli.main import main

main()
