from transcode_operator.main import main

main()
