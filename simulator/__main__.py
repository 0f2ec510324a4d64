from simulator.service import main

main()
