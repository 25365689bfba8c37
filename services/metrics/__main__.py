from services.metrics.main import main

main()
