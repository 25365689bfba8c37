from services.escalation.main import main

main()
