package transfer

const childEnv = "LANCHAT_TRANSFER_CHILD"

func childMain() int { return 2 }
