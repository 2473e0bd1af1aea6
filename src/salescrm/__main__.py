from salescrm.cli import main

main()
