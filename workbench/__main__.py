from workbench.launch import main

if __name__ == "__main__":  # guarded: the network process re-imports the main module when it spawns
    raise SystemExit(main())
