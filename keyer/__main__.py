from keyer.cli import main

main()
