from rs.cli import main

main()
